"""Array-free code that both backends share, written once: input validation and its wording (`validate`), the
scalar option checks of single algorithms (`checks`), shape rules and size bounds (`shapes`), exact scalar
arithmetic (`scalars`) and the versions (`version`). Array-free registry entries (counts, schedules, byte sizes)
and format tables live in their own reference module, which `torch_backend` re-exports or imports.

Nothing here touches an array, so nothing here is implemented twice. It sits at the bottom of the layer order:
it imports the standard library only, `reference`'s algorithm modules import it, and `torch_backend` imports
the same objects. It has no torch twin and no registry entries of its own.
"""
