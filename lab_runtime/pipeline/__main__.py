from lab_runtime.pipeline.traffic import main

main()
