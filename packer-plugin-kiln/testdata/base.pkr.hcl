# A template as a kiln user would write it: use the newest AMI of the "base"
# pipeline that passed kiln's test, here against moto. A real template would
# give data.kiln-ami.base.id to amazon-ebs as source_ami; moto's registered
# AMIs are not EBS-backed to amazon-ebs, so this one writes it to a file.
variable "endpoint" {
  type = string
}

variable "out" {
  type = string
}

data "kiln-ami" "base" {
  pipeline = "base"
  ref      = "main"
  region   = "us-east-1"
  endpoint = var.endpoint
}

source "null" "app" {
  communicator = "none"
}

build {
  sources = ["source.null.app"]

  provisioner "shell-local" {
    inline = ["echo ${data.kiln-ami.base.id} ${data.kiln-ami.base.commit} ${data.kiln-ami.base.tags["kiln:run"]} > ${var.out}"]
  }
}
