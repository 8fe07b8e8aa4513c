"""Section `platform`: runtime detection and the SageMaker container contract (both ways)."""

from shim.config.option import BOOL, ENUM, LIST, MAP, PATH, STR, Option
from shim.platform.detect import RUNTIMES

SECTION = "platform"

OPTIONS = (
    Option("runtime", ["--runtime"], "platform.runtime", ENUM, None,
           "the platform, instead of detecting it (exported as SHIM_RUNTIME; picks profiles.NAME)",
           choices=RUNTIMES, metavar="NAME"),
    Option("hyperparameters_env", ["--hyperparameters-env"], "platform.hyperparameters_env", STR, None,
           "expose SageMaker hyperparameters as PREFIX+NAME variables (NAME upper-cased, non-alnum as _)",
           metavar="PREFIX"),
    Option("hyperparameters_file", ["--hyperparameters-file"], "platform.hyperparameters_file", PATH, None,
           "write SageMaker hyperparameters to PATH: JSON with typed values, dotenv if PATH ends in .env",
           metavar="PATH"),
    Option("hyperparameters_dir", ["--hyperparameters-dir"], "platform.hyperparameters_dir", PATH, None,
           "write SageMaker hyperparameters to DIR as a ConfigMap volume (one file per key, ..data)",
           metavar="DIR"),
    Option("hyperparameters_from", ["--hyperparameters-from"], "platform.hyperparameters_from", STR, None,
           "a JSON object of bulk hyperparameters (beyond the API's 100 keys), e.g. ref+s3://bucket/hp.json",
           metavar="REF"),
    Option("hyperparameters", ["--hyperparameter"], "platform.hyperparameters", MAP, {},
           "a hyperparameter for the synthesised SageMaker layout; repeatable", metavar="NAME=VALUE"),
    Option("sagemaker_layout", ["--sagemaker-layout"], "platform.sagemaker_layout", BOOL, False,
           "off SageMaker, write /opt/ml/input/config/*.json and channels as SageMaker would, "
           "and /opt/ml/output/failure after a failed run"),
    Option("sagemaker_root", ["--sagemaker-root"], "platform.sagemaker_root", PATH, "/",
           "the directory /opt/ml is below (for tests and read-only roots)", metavar="DIR"),
    Option("sagemaker_channels", ["--channel"], "platform.channels", MAP, {},
           "an input channel: /opt/ml/input/data/NAME from a file tree or prefix; repeatable",
           metavar="NAME=REF"),
    Option("sagemaker_hosts", ["--sagemaker-host"], "platform.hosts", LIST, [],
           "a host of resourceconfig.json (default algo-1); repeatable", metavar="NAME"),
    Option("sagemaker_current_host", ["--sagemaker-current-host"], "platform.current_host", STR, None,
           "this host (default algo-(JOB_COMPLETION_INDEX+1), else the first host)", metavar="NAME"),
    Option("sagemaker_network_interface", ["--sagemaker-network-interface"], "platform.network_interface", STR,
           "eth0", "network_interface_name of resourceconfig.json", metavar="NAME"),
    Option("sagemaker_job_name", ["--sagemaker-job-name"], "platform.job_name", STR, None,
           "TRAINING_JOB_NAME for the delegate of a synthesised layout", metavar="NAME"),
)
