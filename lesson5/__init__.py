"""lesson5: a tested companion to fast.ai 2018 Lesson 5 (collaborative filtering, optimizers).

Notebooks 00-06.
"""

__version__ = "0.1.0"
