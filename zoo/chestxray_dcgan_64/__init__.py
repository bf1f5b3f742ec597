"""DCGAN for 64x64 paediatric chest X-rays (Kermany et al.): training recipe and v2 package."""
