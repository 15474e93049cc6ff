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

/** Deploy mode (cluster: the driver runs on YARN; the local runner translates it), jars, extra files, the package zip. */
export function commonSparkOptions(jars: readonly string[], pyFiles: string, files?: string): string[] {
  return [
    "--deploy-mode",
    "cluster",
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
