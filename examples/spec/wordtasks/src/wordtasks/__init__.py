"""Example tasks for depio_like spec files (see examples/spec/wordcount.yaml)."""
