"""Surrogate faces: a face that is nobody, in the person's pose and expression."""
