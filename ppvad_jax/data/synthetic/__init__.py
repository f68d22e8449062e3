"""The embedded default: a synthetic world in UCFCrime2Local's on-disk layout.

``world.generate_world`` writes videos, Vatic annotations and split files that
the real-data builder reads with no special case. ``scenarios`` says what
happens in each class of video, ``render`` draws it.
"""
