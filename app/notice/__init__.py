"""The notice in every form a client can show."""
