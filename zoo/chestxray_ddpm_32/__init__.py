"""DDPM for 32x32 paediatric chest X-rays (Kermany et al.): training recipe and v2 package."""
