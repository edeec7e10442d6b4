"""``tva review``: what a change to the fleet repo would do, as a pull-request comment."""
