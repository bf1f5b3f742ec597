"""Probabilistic PCA for 64x64 paediatric chest X-rays (Kermany et al.): recipe and v2 package."""
