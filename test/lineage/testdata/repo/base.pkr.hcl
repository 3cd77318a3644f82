# The base AMI: amazon-ebs against moto (through the recording proxy), with
# no instance to connect to.
variable "endpoint" {
  type = string
}

variable "kiln_run_id" {
  type    = string
  default = "unknown"
}

source "amazon-ebs" "base" {
  region              = "us-east-1"
  custom_endpoint_ec2 = var.endpoint
  communicator        = "none"
  source_ami          = "ami-1e749f67"
  instance_type       = "t3.micro"
  ami_name            = "base-${regex_replace(var.kiln_run_id, "[^a-zA-Z0-9-]", "-")}-{{timestamp}}"
}

build {
  sources = ["source.amazon-ebs.base"]
}
