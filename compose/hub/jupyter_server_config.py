# JupyterLab in a learner's container: opens on the project, serves the sandbox's status to the hub, and puts the
# sandbox's pages in the launcher under the learner's own URL (jupyter-server-proxy; the services run already).
c = get_config()  # noqa: F821
c.ServerApp.root_dir = "/home/learner/lab"
c.ServerApp.jpserver_extensions = {"lab_sandbox_status": True}
c.ServerApp.terminado_settings = {"shell_command": ["/bin/bash", "-l"]}
c.ServerProxy.servers = {
    "mlflow": {"port": 5000, "launcher_entry": {"title": "MLflow"}},
    "model-service": {"port": 8000, "launcher_entry": {"title": "Model service API", "path_info": "model-service/docs"}},
    "drift-report": {"port": 8100, "launcher_entry": {"title": "Drift report", "path_info": "drift-report/report.html"}},
}
