"""What the site adds to the registry: topics, common names and aliases (`topics`), and the pictures (`pictures`).

Read by `docs/gen_pages.py` at build time and by the docs tests; nothing here imports torch.
"""
