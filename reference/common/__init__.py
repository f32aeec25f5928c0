"""Array-free code that both backends share, written once: input validation and its wording, and (as the
layering work proceeds) format tables, shape rules, counts and schedules.

Nothing here touches an array, so nothing here is implemented twice. It sits at the bottom of the layer order:
it imports the standard library only, `reference`'s algorithm modules import it, and `torch_backend` imports
the same objects. It has no torch twin and no registry entries of its own.
"""
