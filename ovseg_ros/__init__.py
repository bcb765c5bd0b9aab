"""ovseg_ros: the ROS 2 side of ovseg (node, services, conversions, bag tools).

Importing this package does not import rclpy; its modules do.
"""
