"""The campaign engine: submit, control and report campaigns."""
