"""Where the desired state comes from: the fleet repo at a git revision."""
