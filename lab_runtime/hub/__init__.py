"""The class hub: JupyterHub with a server and a sandbox per learner, on Docker or a Docker Swarm."""
