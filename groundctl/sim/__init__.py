"""The orbital compute node simulator: nodes on real orbits speaking `odc-node`.

`SimFleet` (fleet.py) steps the nodes (node.py) in simulated time; wire.py is their
packet format. The in-process `sim` link adapter and `groundctl sim` drive a fleet.
"""
