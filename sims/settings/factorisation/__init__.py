"""Deep matrix factorisation (Arora et al. 2019): completion, sensing, singular-value dynamics."""
