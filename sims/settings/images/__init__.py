"""Image settings (Humayun et al. 2024): the image MLP and CNN (`base`, a helper), grokking, random labels, and the 2-D slices of their partitions (`slices`, a helper)."""
