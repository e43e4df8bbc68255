"""Metrics (FID/KID, LPIPS, PSNR/SSIM), results rows and table/figure rendering for both methods."""
