"""Second-order methods: L-BFGS, BFGS, Newton and Newton-CG, diagonal
curvature and vSGD, the natural gradient, Gauss-Newton and
Levenberg-Marquardt, and the whole solves
:func:`gradtx.minimize` and :func:`gradtx.least_squares`. ``curvature.py``
holds what they share (flat views of a params tree, the curvature-pair
rule); the line searches they chain with are in ``gradtx/_src/linesearch.py``.
"""
