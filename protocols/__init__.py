"""Wire formats and card data: no Twisted and no Redis in here (DESIGN.md)."""
