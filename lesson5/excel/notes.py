"""What the workbooks say to a student: graddesc.xlsx's input labels, both workbooks' cell comments."""

from __future__ import annotations

# Labels of the named input cells, by state key ("m_b0" is the carry of m for b).
LABELS = dict(
    b0="b at reset", a0="a at reset", lr="learning rate", h="finite-difference step",
    beta1="beta1 (gradients)", beta2="beta2 (squares)", d="d at reset", beta_d="beta of d",
    eps="eps", wd="weight decay", expected0="expected step before",
)  # fmt: skip
# What the comment on each input says: what it is, and something to try.
HELP = dict(
    b0="Where b starts (the Reset button set it to 1). The best line has b = 30: try starting at 25.",
    a0="Where a starts (Reset set it to 1). The best line has a = 2: try starting at 2 and watch b alone.",
    lr="Learning rate: how far each step goes along the (scaled) gradient. Try 10 times larger and smaller "
    "and watch the loss chart.",
    h="Finite-difference step: b and a are bumped by this much to estimate the slope. The estimate is too "
    "high by exactly h for b and h*x^2 for a; try 0.001.",
    beta1="Weight of the old average of the gradients (momentum). 0 = plain SGD; try 0.5 and 0.99.",
    beta2="Weight of the old average of the squared gradients. Try 0.5 and 0.99.",
    d="Eve's divisor at reset: steps are divided by d, which follows the loss's relative change.",
    beta_d="Weight of the old d when it is updated after each epoch.",
    eps="Added to sqrt(v) so that a zero gradient does not divide 0 by 0.",
    wd="Weight decay: AdamW shrinks a and b by lr*wd every row, outside the gradient.",
    m_b0="Carry: the running average of de/db before row 1. Reset set it to 0, then pasted the last row's "
    "value back here. Try 0 and see how the first epoch changes.",
    v_b0="Carry: the running average of (de/db)^2 before row 1. Reset set it to 10000, then pasted the last "
    "row's value back here. Try 10000.",
    G_b0="Carry: the gradient size (root of the summed squares / 29) the first epoch's step size lr/G uses. "
    "Reset set it to 10000 (adagrad_ann: 1e6) and adagrad pasted the epoch's own back.",
    expected0="The previous epoch's expected step before the first epoch (Reset set 100); the first epoch "
    "must not expect more than twice it.",
)  # fmt: skip
HELP |= {k.replace("_b", "_a"): v.replace("de/db", "de/da") for k, v in HELP.items() if "_b0" in k}

# The original's red-triangle notes, where a sheet has the column: (table, column, text).
NOTES = [
    ("E", "rmse", "The epoch's loss: the square root of the 29 rows' summed squared errors. The "
     "chart below plots it; change the learning rate and watch it move."),
    ("C", "new_a", "a after this row's step; the next row starts from it. Click it to read the "
     "update rule in the formula bar."),
    ("C", "de_da", "de/da = x * de/db, the derivative of this row's squared error (b + a*x - y)^2 "
     "with respect to a."),
    ("C", "m_a", "The running average of de/da: beta1 * (the row above's, or the carry on the "
     "first row) + (1 - beta1) * de/da."),
    ("C", "v_a", "The running average of (de/da)^2. Its square root scales the step: a parameter "
     "with big gradients takes smaller steps."),
    ("E", "G_b", "The step size of an epoch is lr / G: G is the previous epoch's gradient size "
     "(root of the summed squares / 29); epoch 1 uses the carry."),
    ("E", "halvings", "How often the Run macro halved lr before the epoch was kept (its expected "
     "step at most the limit). A formula cannot rerun an epoch, so this is typed in: set one to 0 "
     "and see the expected step break its limit."),
    ("E", "d", "Eve divides every step by d; after each epoch d moves towards the loss's relative "
     "change |f1 - f2| / min(f1, f2)."),
]  # fmt: skip

# collab_filter.xlsx's notes on the first cell of a factor sheet's block, by block; {plus} names
# the biases on the bias sheet.
COLLAB = dict(
    rmse="The loss: root mean squared error over the rated cells, SQRT(sum of (rating - prediction)^2 / "
    "number of ratings). Try: type another number into a green or orange cell and watch it move; or "
    "Data > Solver > Solve (the model is saved in this sheet: minimise this cell by changing the green "
    "and orange cells, GRG Nonlinear).",
    predictions="A prediction: the dot product of the orange factors on this row and the green factors in "
    "this column{plus}. It is 0 where the blue grid has no rating: those cells do not count in the loss.",
    user_factors="This user's factors (an embedding): numbers the Solver changes. They start random, like "
    "the lesson's RAND().",
    movie_factors="This movie's factors (an embedding). Try: set one to 0 and see which predictions change.",
    ratings="The ratings of the 15 most active users for the 15 most rated movies. A blank cell is a rating "
    "the model must predict, not a zero.",
    user_bias="A user bias: how much more generous than average this user rates, whatever the movie.",
)  # fmt: skip
