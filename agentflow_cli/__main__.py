from agentflow_cli.main import run

run()
