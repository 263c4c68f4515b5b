"""Early- and late-phase implicit biases (Lyu et al. 2024): diagonal nets (sparse task, misgrokking), matrix completion, modular addition."""
