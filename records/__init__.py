"""Patient profiles, their lifecycle, the document catalogue and the encrypted document store."""
