-- taskflow 1.0.0 -> 1.1.0, run operations delta (part 90_ops).

-- rerun gained from_node (a changed signature: the 2-argument one goes)
DROP FUNCTION IF EXISTS taskflow.rerun(bigint, boolean);
