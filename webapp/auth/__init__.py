"""People, roles and areas: accounts, sign-in, tokens, scoping, masking, the audit log."""
