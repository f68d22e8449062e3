"""Video data: layouts, annotations, sampling, decoding, optical flow, builders.

Never imports ``training``, ``serving`` or ``launch``.
"""
