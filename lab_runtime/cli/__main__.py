from lab_runtime.cli import main

main()
