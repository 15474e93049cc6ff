// What both Spark jobs share on EMR: the spark-submit options every job of this project is
// submitted with, and the command-runner.jar step that runs a spark-submit command line.
import type { HadoopJarStepConfig, StepConfig } from "@aws-sdk/client-emr";

/**
 * EMR refuses a step whose strings total more: "The string values passed into HadoopJarStep object
 * cannot exceed a total of 10240 characters."
 * https://docs.aws.amazon.com/emr/latest/APIReference/API_AddJobFlowSteps.html (docs/AWS_CONTRACTS.md E10)
 */
export const EMR_STEP_MAX_CHARACTERS = 10_240;

/** The characters EMR counts against EMR_STEP_MAX_CHARACTERS: every string of the HadoopJarStep. */
export function hadoopJarStepCharacters(step: HadoopJarStepConfig | undefined): number {
  const strings = [
    step?.Jar,
    step?.MainClass,
    ...(step?.Args ?? []),
    ...(step?.Properties ?? []).flatMap((p) => [p.Key, p.Value]),
  ];
  return strings.reduce((total, s) => total + (s?.length ?? 0), 0);
}

/**
 * The Python the job runs on, on the driver and the executors. EMR 7.1 and later ship Python 3.9 and
 * 3.11 (https://docs.aws.amazon.com/emr/latest/ReleaseGuide/emr-release-app-versions-7.x.html) on
 * Amazon Linux 2023, whose `/usr/bin/python3` stays 3.9 and whose 3.11 is `/usr/bin/python3.11`
 * (https://docs.aws.amazon.com/linux/al2023/ug/python.html); the job needs 3.11 (spark/pyproject.toml),
 * so every step names it (docs/AWS_CONTRACTS.md E11). The bootstrap action installs the job's
 * libraries for this interpreter (cluster.ts).
 */
export const EMR_PYTHON = "/usr/bin/python3.11";

/** The Spark conf that picks the Python of the driver and the executors. */
export const PYSPARK_PYTHON_CONF = "spark.pyspark.python";

/**
 * Deploy mode (cluster: the driver runs on YARN; the local runner translates it), the job's Python,
 * jars, extra files, the package zip.
 */
export function commonSparkOptions(jars: readonly string[], pyFiles: string, files?: string): string[] {
  return [
    "--deploy-mode",
    "cluster",
    "--conf",
    `${PYSPARK_PYTHON_CONF}=${EMR_PYTHON}`,
    ...(jars.length > 0 ? ["--jars", jars.join(",")] : []),
    ...(files === undefined ? [] : ["--files", files]),
    "--py-files",
    pyFiles,
  ];
}

/**
 * The EMR step running spark-submit through command-runner.jar. A failed step on a shared
 * cluster must not stop the cluster; a transient cluster has nothing else to do, so it ends.
 * https://docs.aws.amazon.com/emr/latest/APIReference/API_StepConfig.html
 */
export function commandRunnerStep(name: string, args: string[], transient: boolean): StepConfig {
  return {
    Name: name,
    ActionOnFailure: transient ? "TERMINATE_CLUSTER" : "CONTINUE",
    HadoopJarStep: { Jar: "command-runner.jar", Args: args },
  };
}
