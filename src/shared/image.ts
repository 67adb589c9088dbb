// Image names ("images:ubuntu/24.04", "ubuntu:24.04", "debian/12"): one rule for both binaries.

export const IMAGE = /^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,254}$/;

export const IMAGE_FORM =
  'an image name like "images:ubuntu/24.04", "ubuntu:24.04" or a local alias like "debian/12" (letters, digits and ._:/@+-, starting with a letter or digit, at most 255 characters)';

export const isValidImage = (name: string): boolean => IMAGE.test(name);
