"""Faces in photos: find them, cut them out, mask them, read their AUs. Plain torch, numpy and OpenCV.

detect: finding faces (OpenCV's Haar cascades) and aligning them as LibreFace was trained; masks: a detected
face as a MASK for regional AUs; crop: Face Crop / Face Paste, one face of a photo of any size redrawn at
the model's size and pasted back; libreface: LibreFace's AU intensity model (the paper's estimator);
photo_aus: the 12 AUs read off the faces of a batch of photos (detect, align, estimate)."""
