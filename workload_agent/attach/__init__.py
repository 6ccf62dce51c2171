"""Foreign processes: what enters the container without descending from the workload
(docker exec, kubectl exec, ECS Exec). scanner.py notices them and decides what to do;
sessions.py says which exec session a process belongs to."""
