"""Linear models: benign overfitting in regression and max-margin classification, double descent, support-vector proliferation, early-time linear dynamics (Hu et al. 2020)."""
