"""Procedural synthetic faces written in the VGGFace2 layout (DESIGN.md §3.2).

:mod:`.face_model` samples identities and per-image variation, :mod:`.render`
draws them, :mod:`.generate` writes the dataset (:func:`.generate.generate_faces`).
"""
