"""Finding faces: detector, 68 landmarks, tracker, and the geometry derived from landmarks
(face region, skin regions, crop boxes, masks). ``find`` runs them as pass 1."""
