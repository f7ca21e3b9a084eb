"""`tillgate`: one module per command group (HOST-SPEC section 5). The top of the tree: may
import every other room.
"""
