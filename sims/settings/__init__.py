"""One module per setting; importing a module registers its named simulations."""
