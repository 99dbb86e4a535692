"""Diffusion Model Feast: the code the pages show, one module per concept.

Every module here is embedded in the site by section markers and run by ``pytest``:
what a reader copies is what was tested.
"""
