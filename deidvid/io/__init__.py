"""Video in and out: streaming decode with exact timestamps, H.264 encode with audio remux."""
