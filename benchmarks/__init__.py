"""Metrics (FID/KID, LPIPS, PSNR/SSIM), results rows and generic table/figure rendering.

Imports only `tunebench`; each method owns its own table layouts and figures.
"""
