"""Two-layer nets on cluster data: XOR clusters (Xu et al. 2024), leaky ReLU in high dimension (Frei et al. 2023)."""
