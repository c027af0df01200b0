# Empty compiler generated dependencies file for kr_base.
# This may be replaced when dependencies are built.
