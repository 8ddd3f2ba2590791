"""Axes-level plotting, seaborn-style: `plot_x(data, *, x=, y=, hue=, ax=None) -> Axes`.

plots (spectra, metrics over epochs, heat maps, from the tidy frames), boundary
(`BoundaryDisplay`: compute a decision boundary once, draw it as often), embeddings,
effects, corollary; style holds the one look (a local rc context, fixed arm colours).
Each draws on the axes it is given and changes no global state.
"""
