import argparse
import time

time.sleep(60)  # loads a large data set at import time
argparse.ArgumentParser().parse_args()
