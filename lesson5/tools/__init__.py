"""The machinery behind the lesson: command line, notebook runner, run records.

Nothing here is taught; a student reads the modules one level up, in notebook order.
"""
