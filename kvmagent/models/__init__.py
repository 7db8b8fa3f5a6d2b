"""kvmagent command and reply models, one module per area (ZStack's field names,
camelCase on the wire)."""
