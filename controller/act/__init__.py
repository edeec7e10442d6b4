"""Actuators: carry out one node's plan actions on Transmission, the player and VPN tunnels."""
