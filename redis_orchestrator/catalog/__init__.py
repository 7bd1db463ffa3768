"""What must be on every node: the catalog's scripts and libraries read and hashed, their shebang flags."""
